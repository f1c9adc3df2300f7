# codex-as shell integration for zsh 5. Load it from ~/.zshrc with:
#   eval "$(codex-as init zsh)"

# `codex-as use NAME` switches this shell to an account, which no child process can do for it;
# everything else goes to the binary untouched, exit status included.
function codex-as {
    emulate -L zsh
    if [[ ${1-} == use ]]; then
        shift
        __codex_as_use "$@"
    else
        command {{ opts.program_q }} "$@"
    fi
}

function __codex_as_use {
    emulate -L zsh
    local __codex_as_code
    if (( ${@[(I)(-h|--help)]} )); then
        command {{ opts.program_q }} use "$@"
        return
    fi
    # Only code from a successful run is evaluated: on an error this shell stays as it was.
    __codex_as_code=$(command {{ opts.program_q }} use --emit zsh "$@") || return
    eval "$__codex_as_code"
}

# The current account for a prompt, without starting a process. In PROMPT, the expansion
# ${CODEX_AS_ACCOUNT-} itself (with `setopt prompt_subst`) is cheaper still.
function codex_as_prompt {
    emulate -L zsh
    if [[ ${1-} == --quota ]]; then
        # The account and its quota from disk (no network, no broker): `work 5h 42% wk 17%`.
        command {{ opts.program_q }} statusline --short </dev/null 2>/dev/null
        return 0
    fi
    [[ -n ${CODEX_AS_ACCOUNT-} ]] && print -rn -- "$CODEX_AS_ACCOUNT"
    return 0
}
{%- for s in opts.shortcuts %}

function {{ s.function }} {
    command {{ opts.program_q }} {{ s.account_q }} -- codex "$@"
}
{%- endfor %}
{%- if !opts.completion.is_empty() %}

{{ opts.completion }}

# Shortcuts complete like `codex` itself.
function __codex_as_shortcut {
    emulate -L zsh
    words=(codex "${(@)words[2,-1]}")
    _normal
}

# compdef exists once compinit has run. When it has not run yet (it comes later in .zshrc),
# register at the first prompt instead, once: that hook then removes itself.
function __codex_as_compdef {
    emulate -L zsh
    (( $+functions[compdef] )) || return 1
    compdef _codex_as codex-as
{%- for s in opts.shortcuts %}
    compdef __codex_as_shortcut {{ s.function }}
{%- endfor %}
}

function __codex_as_compdef_later {
    emulate -L zsh
    precmd_functions=(${precmd_functions:#__codex_as_compdef_later})
    __codex_as_compdef
    return 0
}

if ! __codex_as_compdef; then
    typeset -ga precmd_functions
    precmd_functions+=(__codex_as_compdef_later)
fi
{%- endif %}
