// berthctl's command groups, one file each. A new group is one more file here, one line in
// this list and one in the list of app.cpp.
#pragma once

#include "../app.hpp"

namespace berth::cli {

void add_status_commands(Commands& commands);    // status, version
void add_plugins_commands(Commands& commands);   // plugins ls|show|enable|disable|reload
void add_settings_commands(Commands& commands);  // settings get|set
void add_audit_commands(Commands& commands);     // audit
void add_events_commands(Commands& commands);    // events
void add_engine_commands(Commands& commands);    // engine start|stop|restart|wait
void add_pack_commands(Commands& commands);      // pack ls|build|use
void add_backend_commands(Commands& commands);   // backend ls|use
void add_ports_commands(Commands& commands);     // ports
void add_logs_commands(Commands& commands);      // logs
void add_diagnose_commands(Commands& commands);  // diagnose check, gather
void add_proxy_commands(Commands& commands);     // proxy show|explain
void add_ui_commands(Commands& commands);        // ui [--open]
void add_k8s_commands(Commands& commands);       // k8s enable|disable|reset|status

}  // namespace berth::cli
