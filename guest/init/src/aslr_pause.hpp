// Config "aslr_off_while_starting": address-space randomisation off while the services start.
// Under QEMU's TCG (no KVM) the guest's code is translated to host code, and a translation is
// found again by the code's virtual address: with randomisation every exec maps ld.so, libc
// and the program somewhere new and all of it is translated afresh. Measured in the VM, one
// iptables run took 45 ms with it and 15 ms without; dockerd --version 0.8 s and 0.45 s; and
// dockerd runs iptables about 70 times before it answers. Processes started once the services
// are up (containers, shims, execs) get randomised addresses again; the services started
// meanwhile (containerd, dockerd: Go programs) keep the layout they got.
#pragma once

#include <string>

namespace berth::init {

class AslrPause {
 public:
  // Sets kernel.randomize_va_space to 0, remembering its value. Only as the machine's own
  // PID 1 (a VM): in a container the setting is the host kernel's, so it is left alone (logged).
  void begin();
  // Sets the remembered value back; nothing if begin() changed nothing. Safe to call again.
  void end();
  bool active() const { return !previous_.empty(); }

 private:
  std::string previous_;
};

}  // namespace berth::init
