# codex-as shell integration for fish 3+. Load it from ~/.config/fish/config.fish with:
#   codex-as init fish | source

# `codex-as use NAME` switches this shell to an account, which no child process can do for it;
# everything else goes to the binary untouched, exit status included.
function codex-as --description 'Run as a Codex account; `codex-as use NAME` switches this shell'
    if test (count $argv) -ge 1; and test "$argv[1]" = use
        set -e argv[1]
        if contains -- -h $argv; or contains -- --help $argv
            command {{ opts.program_q }} use $argv
            return
        end
        # Only code from a successful run is evaluated: on an error this shell stays as it was.
        set -l code (command {{ opts.program_q }} use --emit fish $argv)
        or return
        string join \n -- $code | source
    else
        command {{ opts.program_q }} $argv
    end
end

# The current account for fish_prompt (a function, so no process is started).
function codex_as_prompt --description 'The current codex-as account (--quota: and its quota)'
    if test "$argv[1]" = --quota
        # The account and its quota from disk (no network, no broker): `work 5h 42% wk 17%`.
        command {{ opts.program_q }} statusline --short </dev/null 2>/dev/null
        return 0
    end
    if set -q CODEX_AS_ACCOUNT[1]; and test -n "$CODEX_AS_ACCOUNT"
        printf '%s' $CODEX_AS_ACCOUNT
    end
end
{%- for s in opts.shortcuts %}

function {{ s.function }} --wraps codex --description {{ s.description_q }}
    command {{ opts.program_q }} {{ s.account_q }} -- codex $argv
end
{%- endfor %}
{%- if !opts.completion.is_empty() %}

{{ opts.completion }}
{%- endif %}
