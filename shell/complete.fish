# Completion for codex-as in fish 3+. Generated from the CLI by `codex-as completions fish`;
# `codex-as init fish` includes it.

# Account names, read at each TAB so that a new account appears without re-sourcing anything.
function __codex_as_accounts
    command {{ spec.program_q }} list --names 2>/dev/null | while read -l name
        printf '%s\t%s\n' $name account
    end
end

# Completes the last account of the comma list $argv[1] (`alice,b` offers `alice,bob`), leaving
# out the accounts already in the list.
function __codex_as_list
    set -l taken (string split , -- $argv[1])
    set -e taken[-1]
    set -l head (string join , -- $taken)
    command {{ spec.program_q }} list --names 2>/dev/null | while read -l name
        if not contains -- $name $taken
            printf '%s,%s\t%s\n' $head $name account
        end
    end
end

# Completes a value of kind $argv[1] (account, dir, file, any, or choices `a|b|c`) for the
# token $argv[2].
function __codex_as_value
    switch $argv[1]
        case account
            __codex_as_accounts
        case dir
            __fish_complete_directories $argv[2]
        case file
            __fish_complete_path $argv[2]
        case any
        case '*'
            string split '|' -- $argv[1]
    end
end

# Completes the command line that follows the `--` at token $argv[1], as if typed alone.
function __codex_as_command
    set -l words (commandline -opc)
    set -l rest
    set -l j (math $argv[1] + 1)
    while test $j -le (count $words)
        set -a rest (string escape -- $words[$j])
        set j (math $j + 1)
    end
    complete -C (string join ' ' -- $rest (commandline -ct))
end

# Completes the arguments of a subcommand. $argv[1]: what follows `--` (none, args, command);
# $argv[2]: its flags (`--json`, `--home=dir`); $argv[3]: the kinds of its positional arguments.
function __codex_as_sub
    set -l last $argv[1]
    set -l flags (string split -n ' ' -- $argv[2])
    set -l kinds (string split -n ' ' -- $argv[3])
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -e words[1..2]
    set -l pending
    set -l npos 0
    set -l i 2
    for word in $words
        set i (math $i + 1)
        if test -n "$pending"
            set pending
            continue
        end
        if test "$word" = --
            switch $last
                case args
                    __fish_complete_path $cur
                    return
                case command
                    __codex_as_command $i
                    return
            end
            continue
        end
        if string match -q -- '-*' $word
            for spec in $flags
                set -l parts (string split -m 1 = -- $spec)
                if test "$parts[1]" = "$word"; and set -q parts[2]
                    set pending $parts[2]
                end
            end
            continue
        end
        set npos (math $npos + 1)
    end
    if test -n "$pending"
        __codex_as_value $pending $cur
    else if string match -q -- '-*' $cur
        string replace -r -- '=.*' '' $flags
    else if test $npos -lt (count $kinds)
        __codex_as_value $kinds[(math $npos + 1)] $cur
    end
end

# Completes `codex-as ACCOUNT [--cwd DIR] [--plugin-root DIR] [COMPANION ... | -- COMMAND ...]`.
function __codex_as_run
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l n (count $words)
    set -l i 3
    while test $i -le $n
        if test "$words[$i]" = --
            __codex_as_command $i
            return
        end
        set i (math $i + 1)
    end
    if contains -- "$words[$n]" --cwd --plugin-root
        __fish_complete_directories $cur
        return
    end
    set i 3
    while test $i -le $n; and contains -- "$words[$i]" --cwd --plugin-root
        set i (math $i + 2)
    end
    if test $i -eq (math $n + 1)
        printf '%s\tcompanion command\n'{% for w in spec.companion_q %} {{ w }}{% endfor %}
        printf '%s\n' -- --cwd --plugin-root
    else
        __fish_complete_path $cur
    end
end

function __codex_as_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    if test (count $words) -eq 1
        if string match -q -- '-*' $cur
            string replace -r -- '=.*' '' (string split -n ' ' -- {{ spec.flags_q }})
            return
        end
        if string match -q -- '*,*' $cur
            __codex_as_list $cur
            return
        end
{%- for s in spec.subcommands %}
        printf '%s\t%s\n' {{ s.name_q }} {{ s.about_q }}
{%- endfor %}
        __codex_as_accounts
        printf '%s\t%s\n' auto 'the account with the most quota left'
        return
    end
    switch $words[2]
{%- for s in spec.subcommands %}
        case {{ s.name_q }}
            __codex_as_sub {{ s.last }} {{ s.flags_q }} {{ s.positionals_q }}
{%- endfor %}
        case '-*'
        case '*'
            __codex_as_run
    end
end

complete -c codex-as -e
complete -c codex-as -f -a '(__codex_as_complete)'
