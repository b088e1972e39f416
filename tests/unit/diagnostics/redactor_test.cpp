// The redactor masks what berthd knows is secret and what has the shape of a
// secret, counts each mask, and leaves the rest of the text as it was.
#include "berth/diagnostics/redactor.hpp"

#include <catch2/catch.hpp>
#include <string>

using berth::diagnostics::Redactor;

namespace {

bool holds(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("redactor: a known secret is masked wherever it occurs, each time counted") {
  Redactor r;
  r.add_secret("s3cr3t-t0ken-value");
  auto out = r.redact("token=s3cr3t-t0ken-value and again s3cr3t-t0ken-value.\nother line stays\n");
  CHECK_FALSE(holds(out.text, "s3cr3t"));
  CHECK(out.redactions == 2);
  CHECK(out.text == "token=[redacted] and again [redacted].\nother line stays\n");
}

TEST_CASE("redactor: values shorter than 4 bytes are not secrets worth masking everywhere") {
  Redactor r;
  r.add_secret("on");
  r.add_secret("");
  auto out = r.redact("the engine is on");
  CHECK(out.text == "the engine is on");
  CHECK(out.redactions == 0);
}

TEST_CASE("redactor: a proxy URL's password, its userinfo and their Basic form are masked") {
  Redactor r;
  r.add_url_credentials("http://alice:pa55-word-xyz@proxy.corp.example:3128");
  // base64("alice:pa55-word-xyz")
  auto out = r.redact("pass pa55-word-xyz; basic YWxpY2U6cGE1NS13b3JkLXh5eg== seen");
  CHECK_FALSE(holds(out.text, "pa55-word-xyz"));
  CHECK_FALSE(holds(out.text, "YWxpY2U6cGE1NS13b3JkLXh5eg=="));
  CHECK(out.redactions == 2);
}

TEST_CASE("redactor: URL userinfo is masked by shape, the host and path stay") {
  Redactor r;
  auto out = r.redact("HTTPS_PROXY=http://bob:hunter2@10.0.0.1:8080/ and https://registry.example/v2/ and mailto");
  CHECK(out.text == "HTTPS_PROXY=http://[redacted]@10.0.0.1:8080/ and https://registry.example/v2/ and mailto");
  CHECK(out.redactions == 1);
}

TEST_CASE("redactor: Authorization and Proxy-Authorization values, bearer tokens") {
  Redactor r;
  auto out = r.redact(
      "Authorization: Bearer abcdefghijklmnop\r\n"
      "proxy-authorization: Basic Ym9iOmh1bnRlcjI=\n"
      "{\"Authorization\":\"Bearer zyxwvutsrqponmlk\"}\n"
      "headers map[Proxy-Authorization:[Basic cXdlcnR5dWlvcA==]]\n"
      "curl -H 'x: y' --oauth2-bearer ignored; token bearer 0123456789abcdef end\n"
      "a basic setup\n");
  for (const char* leaked :
       {"abcdefghijklmnop", "Ym9iOmh1bnRlcjI=", "zyxwvutsrqponmlk", "cXdlcnR5dWlvcA==", "0123456789abcdef"})
    CHECK_FALSE(holds(out.text, leaked));
  CHECK(holds(out.text, "a basic setup"));
  CHECK(out.redactions == 5);
}

TEST_CASE("redactor: a PEM private key goes whole, a certificate stays") {
  Redactor r;
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
  auto out = r.redact(cert + "-----BEGIN RSA PRIVATE KEY-----\nMIIEkeybody\nmorekey\n-----END RSA PRIVATE KEY-----\n" +
                      "-----BEGIN PRIVATE KEY-----\ncut off here");
  CHECK(holds(out.text, cert));
  CHECK_FALSE(holds(out.text, "MIIEkeybody"));
  CHECK_FALSE(holds(out.text, "morekey"));
  CHECK_FALSE(holds(out.text, "cut off here"));
  CHECK(out.redactions == 2);
}

TEST_CASE("redactor: registry auth and passwords in docker config JSON") {
  Redactor r;
  auto out = r.redact(R"({"auths": {"registry.example": {"auth": "dXNlcjpyZWdwYXNz", "email": "a@b"}},
 "credHelpers": {}, "Password" : "plain-regpass", "identitytoken": "id-tok-123", "token": "esc\"aped"})");
  CHECK_FALSE(holds(out.text, "dXNlcjpyZWdwYXNz"));
  CHECK_FALSE(holds(out.text, "plain-regpass"));
  CHECK_FALSE(holds(out.text, "id-tok-123"));
  CHECK_FALSE(holds(out.text, "aped"));
  CHECK(holds(out.text, R"("email": "a@b")"));
  CHECK(out.redactions == 4);
}

TEST_CASE("redactor: text without secrets comes back unchanged, also when large") {
  Redactor r;
  r.add_secret("never-here-1234");
  std::string big;
  for (int i = 0; i < 100000; ++i)
    big += "2026-12-04T03:00:00.000Z dockerd: level=info msg=\"ok " + std::to_string(i) + "\"\n";
  auto out = r.redact(big);
  CHECK(out.redactions == 0);
  CHECK(out.text == big);
}
