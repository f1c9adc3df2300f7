# shellcheck shell=bash
# codex-as shell integration for bash 4+. Load it from ~/.bashrc with:
#   eval "$(codex-as init bash)"

# `codex-as use NAME` switches this shell to an account, which no child process can do for it;
# everything else goes to the binary untouched, exit status included.
function codex-as() {
    if [[ ${1-} == use ]]; then
        shift
        __codex_as_use "$@"
    else
        command {{ opts.program_q }} "$@"
    fi
}

function __codex_as_use() {
    local __codex_as_arg __codex_as_code
    for __codex_as_arg in "$@"; do
        case ${__codex_as_arg} in
            -h | --help)
                command {{ opts.program_q }} use "$@"
                return
                ;;
            *) ;;
        esac
    done
    # Only code from a successful run is evaluated: on an error this shell stays as it was.
    __codex_as_code=$(command {{ opts.program_q }} use --emit bash "$@") || return
    eval "${__codex_as_code}"
}

# The current account for a prompt, without starting a process. In PS1, the expansion
# ${CODEX_AS_ACCOUNT-} itself is cheaper still (no subshell).
function codex_as_prompt() {
    if [[ ${1-} == --quota ]]; then
        # The account and its quota from disk (no network, no broker): `work 5h 42% wk 17%`.
        command {{ opts.program_q }} statusline --short </dev/null 2>/dev/null
        return 0
    fi
    if [[ -n ${CODEX_AS_ACCOUNT-} ]]; then
        printf '%s' "${CODEX_AS_ACCOUNT}"
    fi
}
{%- for s in opts.shortcuts %}

function {{ s.function }}() {
    command {{ opts.program_q }} {{ s.account_q }} -- codex "$@"
}
{%- endfor %}
{%- if !opts.completion.is_empty() %}

{{ opts.completion }}
{%- endif %}
