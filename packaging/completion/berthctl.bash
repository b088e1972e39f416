# bash completion for berthctl (installed as
# /usr/share/bash-completion/completions/berthctl). Commands come from the list
# below (tests/integration/packaging checks it against `berthctl --help`); plugin ids,
# setting keys, backend names and pack versions are asked of berthctl itself,
# on the same --socket as the command line being completed.

# berthctl [--socket S] --json ARGS..., quietly; empty when the daemon does not answer.
_berthctl_json() {
  timeout 5 "${_berthctl_cmd:-berthctl}" "${_berthctl_socket[@]}" --json "$@" 2>/dev/null
}

# The string values of "KEY": "VALUE" pairs in JSON on stdin.
_berthctl_values_of() {
  grep -o "\"$1\": *\"[^\"]*\"" | sed 's/.*: *"\([^"]*\)"$/\1/'
}

_berthctl() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local prev=${COMP_WORDS[COMP_CWORD - 1]}
  local _berthctl_cmd=${COMP_WORDS[0]}
  local -a _berthctl_socket=() args=()
  local i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --socket)
        ((i + 1 < COMP_CWORD)) && _berthctl_socket=(--socket "${COMP_WORDS[i + 1]}")
        ((i++))
        ;;
      --socket=*) _berthctl_socket=("$w") ;;
      -*) ;;
      *) args+=("$w") ;;
    esac
  done

  COMPREPLY=()
  if [[ $prev == --socket ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  if [[ $prev == --source && ${args[0]} == logs ]]; then
    COMPREPLY=($(compgen -W "$(timeout 5 "$_berthctl_cmd" "${_berthctl_socket[@]}" logs --list-sources 2>/dev/null)" -- "$cur"))
    return
  fi
  if [[ $cur == -* ]]; then
    local options="--help --json --socket"
    [[ ${args[0]} == logs ]] && options+=" --follow --source --since --lines --list-sources"
    [[ ${args[*]} == "diagnose gather" ]] && options+=" --output --preview"
    [[ ${args[0]} == ui ]] && options+=" --open"
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
    return
  fi

  local commands="audit backend diagnose engine events help k8s logs pack plugins ports proxy settings status ui version"
  local words=""
  case "${args[*]}" in
    "" | help) words=$commands ;;
    backend) words="ls use" ;;
    "backend use") words=$(_berthctl_json backend ls | _berthctl_values_of name) ;;
    diagnose) words="check gather" ;;
    engine) words="start stop restart hand-over wait" ;;
    k8s) words="enable disable reset status" ;;
    pack) words="ls build use" ;;
    "pack use") words=$(_berthctl_json pack ls | _berthctl_values_of version) ;;
    plugins) words="ls show enable disable reload" ;;
    "plugins show" | "plugins enable" | "plugins disable" | "plugins reload" | "settings get" | "settings set")
      words=$(_berthctl_json plugins ls | _berthctl_values_of id)
      ;;
    proxy) words="show explain" ;;
    settings) words="get set" ;;
    "settings get "*)
      ((${#args[@]} == 3)) && words=$(_berthctl_json settings get "${args[2]}" | _berthctl_setting_keys)
      ;;
    "settings set "*)
      # KEY=VALUE: offer "key=" and let the user type the value.
      if [[ $cur != *=* ]]; then
        local keys
        keys=$(_berthctl_json settings get "${args[2]}" | _berthctl_setting_keys)
        COMPREPLY=($(compgen -W "$keys" -S = -- "$cur"))
        compopt -o nospace 2>/dev/null
      fi
      return
      ;;
    help\ *)
      case ${args[1]} in
        backend) words="ls use" ;; diagnose) words="check gather" ;; engine) words="start stop restart hand-over wait" ;;
        k8s) words="enable disable reset status" ;;
        pack) words="ls build use" ;; plugins) words="ls show enable disable reload" ;;
        proxy) words="show explain" ;; settings) words="get set" ;;
      esac
      ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

# The setting keys of a plugin: the keys of GET /v1/settings/{id}'s "sources"
# object (flat: key -> "default" | "admin" | "user" | "locked").
_berthctl_setting_keys() {
  tr -d '\n' | grep -o '"sources": *{[^}]*}' | sed 's/^"sources": *{//' | grep -o '"[^"]*": *"' |
    sed 's/^"\([^"]*\)".*/\1/'
}

complete -F _berthctl berthctl
