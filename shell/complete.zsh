{%- if standalone -%}
#compdef codex-as
{% endif -%}
# Completion for codex-as in zsh 5. Generated from the CLI by `codex-as completions zsh`;
# `codex-as init zsh` includes it.

# Account names, read at each TAB so that a new account appears without re-sourcing anything.
function __codex_as_accounts {
    local -a accounts expl
    accounts=(${(f)"$(command {{ spec.program_q }} list --names 2>/dev/null)"})
    _wanted accounts expl account compadd -a accounts
}

# Completes the last account of a comma list (`alice,b<TAB>` offers `alice,bob`), leaving out the
# accounts already in the list.
function __codex_as_list {
    local head=${words[CURRENT]%,*}
    local -a accounts taken expl
    accounts=(${(f)"$(command {{ spec.program_q }} list --names 2>/dev/null)"})
    taken=(${(s:,:)head})
    accounts=(${accounts:|taken})
    accounts=(${accounts/#/$head,})
    _wanted accounts expl account compadd -a accounts
}

# Completes a value of kind $1: account, dir, file, any, or choices `a|b|c`.
function __codex_as_value {
    local -a choices expl
    case $1 in
        account) __codex_as_accounts ;;
        dir) _files -/ ;;
        file) _files ;;
        any) _message value ;;
        *)
            choices=(${(s:|:)1})
            _wanted values expl value compadd -a choices
            ;;
    esac
}

# Completes the command line that follows the `--` at $words[$1], as if typed alone.
function __codex_as_command {
    local dashdash=$1
    shift $dashdash words
    (( CURRENT -= dashdash ))
    _normal
}

# Completes the arguments of a subcommand. $1: what follows `--` (none, args, command); $2: its flags
# (`--json`, `--home=dir`); $3: the kinds of its positional arguments, in order.
function __codex_as_sub {
    local last=$1 word spec pending= i npos=0
    local -a flags kinds
    flags=(${=2})
    kinds=(${=3})
    for (( i = 3; i < CURRENT; i++ )); do
        word=$words[i]
        if [[ -n $pending ]]; then
            pending=
            continue
        fi
        if [[ $word == -- ]]; then
            case $last in
                args) _files; return ;;
                command) __codex_as_command $i; return ;;
            esac
            continue
        fi
        if [[ $word == -* ]]; then
            for spec in $flags; do
                [[ $spec == ${word}=* ]] && pending=${spec#*=}
            done
            continue
        fi
        (( npos++ ))
    done
    if [[ -n $pending ]]; then
        __codex_as_value $pending
    elif [[ $words[CURRENT] == -* ]]; then
        compadd -- ${flags%%=*}
    elif (( npos < $#kinds )); then
        __codex_as_value $kinds[npos+1]
    fi
}

# Completes `codex-as ACCOUNT [--cwd DIR] [--plugin-root DIR] [COMPANION ... | -- COMMAND ...]`.
function __codex_as_run {
    local i
    local -a companion expl
    for (( i = 3; i < CURRENT; i++ )); do
        if [[ $words[i] == -- ]]; then
            __codex_as_command $i
            return
        fi
    done
    if [[ $words[CURRENT-1] == (--cwd|--plugin-root) ]]; then
        _files -/
        return
    fi
    i=3
    while (( i < CURRENT )) && [[ $words[i] == (--cwd|--plugin-root) ]]; do
        (( i += 2 ))
    done
    if (( i == CURRENT )); then
        companion=({% for w in spec.companion_q %}{% if !loop.first %} {% endif %}{{ w }}{% endfor %})
        _wanted companion expl 'companion command' compadd -a companion
        compadd -- -- --cwd --plugin-root
    else
        _files
    fi
}

function _codex_as {
    emulate -L zsh
    local all={{ spec.flags_q }}
    local -a subcommands displays flags expl
    if (( CURRENT == 2 )); then
        if [[ $words[CURRENT] == -* ]]; then
            flags=(${=all})
            compadd -- ${flags%%=*}
            return
        fi
        if [[ $words[CURRENT] == *,* ]]; then
            __codex_as_list
            return
        fi
        subcommands=({% for s in spec.subcommands %}{% if !loop.first %} {% endif %}{{ s.name_q }}{% endfor %})
        displays=(
{%- for s in spec.subcommands %}
            {{ s.display_q }}
{%- endfor %}
        )
        _wanted commands expl 'codex-as command' compadd -l -d displays -a subcommands
        __codex_as_accounts
        _wanted accounts expl 'account' compadd -- auto
        return 0
    fi
    case $words[2] in
{%- for s in spec.subcommands %}
        {{ s.name_q }}) __codex_as_sub {{ s.last }} {{ s.flags_q }} {{ s.positionals_q }} ;;
{%- endfor %}
        -*) ;;
        *) __codex_as_run ;;
    esac
}
{%- if standalone %}

_codex_as "$@"
{%- endif %}
