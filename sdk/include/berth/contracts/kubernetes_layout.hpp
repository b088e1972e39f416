// The files berth puts under a pack's Kubernetes data_dir (pack_manifest.hpp, "kubernetes")
// before the server's first start: the cluster's certificates, made on the host. The paths are
// k3s's own layout (<data-dir>/server/tls), where k3s takes a CA it finds instead of making
// one, so the kubeconfig berth writes on the host trusts the server and the server trusts it.
// Written by the k8s feature, read by the server inside (k3s, or the tests' double).
#pragma once

namespace berth::contracts::kubernetes {

// One CA signs both the API server's certificate and the clients' (k3s keeps two files).
inline constexpr const char* kServerCaCert = "server/tls/server-ca.crt";
inline constexpr const char* kServerCaKey = "server/tls/server-ca.key";
inline constexpr const char* kClientCaCert = "server/tls/client-ca.crt";
inline constexpr const char* kClientCaKey = "server/tls/client-ca.key";
// The API server's serving certificate (SANs localhost, 127.0.0.1, host.berth.internal).
inline constexpr const char* kServingCert = "server/tls/serving-kube-apiserver.crt";
inline constexpr const char* kServingKey = "server/tls/serving-kube-apiserver.key";
// berth's own: the admin client certificate of the host's kubeconfig, kept with the cluster
// so a restart of berthd finds it and a reset renews it with everything else.
inline constexpr const char* kAdminCert = "berth/admin.crt";
inline constexpr const char* kAdminKey = "berth/admin.key";

}  // namespace berth::contracts::kubernetes
