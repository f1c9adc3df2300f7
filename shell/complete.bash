# shellcheck shell=bash
# Completion for codex-as in bash 4+. Generated from the CLI by `codex-as completions bash`;
# `codex-as init bash` includes it.

# Account names, read at each TAB so that a new account appears without re-sourcing anything.
function __codex_as_accounts() {
    command {{ spec.program_q }} list --names 2>/dev/null
}

# Adds each of $2... that starts with $1 to COMPREPLY. Not `compgen -W`: it would expand `$` and
# backticks in the words.
function __codex_as_offer() {
    local prefix=$1 word
    shift
    for word in "$@"; do
        if [[ ${word} == "${prefix}"* ]]; then
            COMPREPLY+=("${word}")
        fi
    done
}

# Completes a value of kind $1 (account, dir, file, any, or choices `a|b|c`) for the word $2.
function __codex_as_value() {
    local kind=$1 cur=$2 line
    local -a words=()
    case ${kind} in
        account)
            while IFS= read -r line; do
                words+=("${line}")
            done < <(__codex_as_accounts || true)
            __codex_as_offer "${cur}" ${words[@]+"${words[@]}"}
            ;;
        dir)
            compopt -o filenames 2>/dev/null || true
            while IFS= read -r line; do
                COMPREPLY+=("${line}")
            done < <(compgen -d -- "${cur}" || true)
            ;;
        file)
            compopt -o filenames 2>/dev/null || true
            while IFS= read -r line; do
                COMPREPLY+=("${line}")
            done < <(compgen -f -- "${cur}" || true)
            ;;
        any) ;;
        *)
            IFS='|' read -ra words <<<"${kind}"
            __codex_as_offer "${cur}" ${words[@]+"${words[@]}"}
            ;;
    esac
}

# Completes the last account of a comma list (`alice,b<TAB>` offers `alice,bob`), leaving out the
# accounts already in the list.
function __codex_as_list() {
    local cur=$1 head=${1%,*} line used
    local -a taken=()
    IFS=, read -ra taken <<<"${head}"
    while IFS= read -r line; do
        for used in ${taken[@]+"${taken[@]}"}; do
            [[ ${line} == "${used}" ]] && continue 2
        done
        __codex_as_offer "${cur}" "${head},${line}"
    done < <(__codex_as_accounts || true)
}

# Completes the command line that follows the `--` at COMP_WORDS[$1].
function __codex_as_command() {
    local dashdash=$1 cur=${COMP_WORDS[COMP_CWORD]-} line
    if ((dashdash + 1 == COMP_CWORD)); then
        while IFS= read -r line; do
            COMPREPLY+=("${line}")
        done < <(compgen -c -- "${cur}" || true)
    elif declare -F _comp_command_offset >/dev/null; then
        # bash-completion 2.12+ is loaded: complete the command as if typed alone.
        _comp_command_offset $((dashdash + 1))
    elif declare -F _command_offset >/dev/null; then
        # Older bash-completion.
        _command_offset $((dashdash + 1))
    else
        __codex_as_value file "${cur}"
    fi
}

# Completes the arguments of a subcommand. $1: what follows `--` (none, args, command); $2: its flags
# (`--json`, `--home=dir`); $3: the kinds of its positional arguments, in order.
function __codex_as_sub() {
    local last=$1 cur=${COMP_WORDS[COMP_CWORD]-} word spec pending='' i npos=0
    local -a flags=() kinds=() names=()
    read -ra flags <<<"$2"
    read -ra kinds <<<"$3"
    for ((i = 2; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -n ${pending} ]]; then
            pending=''
            continue
        fi
        if [[ ${word} == -- ]]; then
            case ${last} in
                args)
                    __codex_as_value file "${cur}"
                    return
                    ;;
                command)
                    __codex_as_command "${i}"
                    return
                    ;;
                *) ;;
            esac
            continue
        fi
        if [[ ${word} == -* ]]; then
            for spec in ${flags[@]+"${flags[@]}"}; do
                if [[ ${spec} == "${word}="* ]]; then
                    pending=${spec#*=}
                fi
            done
            continue
        fi
        npos=$((npos + 1))
    done
    if [[ -n ${pending} ]]; then
        __codex_as_value "${pending}" "${cur}"
    elif [[ ${cur} == -* ]]; then
        for spec in ${flags[@]+"${flags[@]}"}; do
            names+=("${spec%%=*}")
        done
        __codex_as_offer "${cur}" ${names[@]+"${names[@]}"}
    elif ((npos < ${#kinds[@]})); then
        __codex_as_value "${kinds[npos]}" "${cur}"
    fi
}

# Completes `codex-as ACCOUNT [--cwd DIR] [--plugin-root DIR] [COMPANION ... | -- COMMAND ...]`.
function __codex_as_run() {
    local cur=${COMP_WORDS[COMP_CWORD]-} i=2
    for ((i = 2; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- ]]; then
            __codex_as_command "${i}"
            return
        fi
    done
    case ${COMP_WORDS[COMP_CWORD - 1]} in
        --cwd | --plugin-root)
            __codex_as_value dir "${cur}"
            return
            ;;
        *) ;;
    esac
    i=2
    while ((i < COMP_CWORD)) && [[ ${COMP_WORDS[i]} == --cwd || ${COMP_WORDS[i]} == --plugin-root ]]; do
        i=$((i + 2))
    done
    if ((i == COMP_CWORD)); then
        __codex_as_offer "${cur}" -- --cwd --plugin-root{% for w in spec.companion_q %} {{ w }}{% endfor %}
    else
        __codex_as_value file "${cur}"
    fi
}

function _codex_as() {
    local cur=${COMP_WORDS[COMP_CWORD]-} word
    local -a names=()
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        if [[ ${cur} == -* ]]; then
            read -ra names <<<{{ spec.flags_q }}
            for word in ${names[@]+"${names[@]}"}; do
                __codex_as_offer "${cur}" "${word%%=*}"
            done
        elif [[ ${cur} == *,* ]]; then
            __codex_as_list "${cur}"
        else
            __codex_as_offer "${cur}"{% for s in spec.subcommands %} {{ s.name_q }}{% endfor %} auto
            __codex_as_value account "${cur}"
        fi
        return 0
    fi
    case ${COMP_WORDS[1]} in
{%- for s in spec.subcommands %}
        {{ s.name_q }}) __codex_as_sub {{ s.last }} {{ s.flags_q }} {{ s.positionals_q }} ;;
{%- endfor %}
        -*) ;;
        *) __codex_as_run ;;
    esac
    return 0
}

complete -F _codex_as codex-as
