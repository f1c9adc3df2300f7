# Completion for codex-as in fish 3+. Generated from the CLI by `codex-as completions fish`;
# `codex-as init fish` includes it.

# Account names, read at each TAB so that a new account appears without re-sourcing anything.
function __codex_as_accounts
    command codex-as list --names 2>/dev/null | while read -l name
        printf '%s\t%s\n' $name account
    end
end

# Completes the last account of the comma list $argv[1] (`alice,b` offers `alice,bob`), leaving
# out the accounts already in the list.
function __codex_as_list
    set -l taken (string split , -- $argv[1])
    set -e taken[-1]
    set -l head (string join , -- $taken)
    command codex-as list --names 2>/dev/null | while read -l name
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
        printf '%s\tcompanion command\n' 'setup' 'review' 'adversarial-review' 'task' 'transfer' 'status' 'result' 'cancel' 'resume'
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
            string replace -r -- '=.*' '' (string split -n ' ' -- '--help -h --version -V')
            return
        end
        if string match -q -- '*,*' $cur
            __codex_as_list $cur
            return
        end
        printf '%s\t%s\n' 'add' 'Add an account to the config (its home defaults to ~/.codex-NAME)'
        printf '%s\t%s\n' 'remove' 'Remove an account from the config (its home folder is never deleted)'
        printf '%s\t%s\n' 'list' 'List accounts: name, home, whether it exists, how it is logged in'
        printf '%s\t%s\n' 'which' 'Print an account\'s home folder; with no name, which account this folder uses and why'
        printf '%s\t%s\n' 'pin' 'Pin this folder (and below) to an account, a list or auto: writes ./.codex-account, meant to be committed'
        printf '%s\t%s\n' 'claude' 'Put Claude Code\'s /codex:* commands on each project\'s account (hooks in Claude\'s settings)'
        printf '%s\t%s\n' 'login' 'Create an account\'s home when missing and run `codex login` as it'
        printf '%s\t%s\n' 'env' 'Print shell code that switches the current shell to an account'
        printf '%s\t%s\n' 'brokers' 'Show the brokers keeping accounts\' app-servers warm, or stop codex-as\'s idle ones'
        printf '%s\t%s\n' 'init' 'Print the shell integration: `codex-as use`, completions, a prompt helper'
        printf '%s\t%s\n' 'use' 'Switch this shell to an account (needs `codex-as init` loaded in the shell)'
        printf '%s\t%s\n' 'completions' 'Print the completion script for a shell (`codex-as init` already loads it)'
        printf '%s\t%s\n' 'quota' 'Each account\'s 5-hour and weekly usage, and the order `auto` would try them in'
        printf '%s\t%s\n' 'threads' 'Recent Codex threads across all accounts: id, the accounts holding it, folder, last activity'
        printf '%s\t%s\n' 'doctor' 'Check the whole setup; for each problem, say what is wrong and the command that fixes it'
        printf '%s\t%s\n' 'statusline' 'One line for Claude Code\'s statusLine (reads its JSON on stdin): the folder\'s account and its quota'
        __codex_as_accounts
        printf '%s\t%s\n' auto 'the account with the most quota left'
        return
    end
    switch $words[2]
        case 'add'
            __codex_as_sub none '--home=dir --help -h' 'any'
        case 'remove'
            __codex_as_sub none '--help -h' 'account'
        case 'list'
            __codex_as_sub none '--json --help -h' ''
        case 'which'
            __codex_as_sub none '--help -h' 'account'
        case 'pin'
            __codex_as_sub none '--unset --help -h' 'account'
        case 'claude'
            __codex_as_sub none '--help -h --project' 'install|uninstall|status'
        case 'login'
            __codex_as_sub args '--copy-config --help -h' 'account'
        case 'env'
            __codex_as_sub none '--shell=bash|zsh|fish|posix --help -h' 'account'
        case 'brokers'
            __codex_as_sub none '--json --help -h --idle --all --timeout=any' 'list|stop'
        case 'init'
            __codex_as_sub none '--shortcuts --no-completions --help -h' 'bash|zsh|fish'
        case 'use'
            __codex_as_sub none '--unset --help -h' 'account'
        case 'completions'
            __codex_as_sub none '--help -h' 'bash|zsh|fish'
        case 'quota'
            __codex_as_sub none '--json --fresh --help -h' ''
        case 'threads'
            __codex_as_sub none '--json --limit=any --help -h' ''
        case 'doctor'
            __codex_as_sub none '--json --help -h' ''
        case 'statusline'
            __codex_as_sub none '--short --help -h' ''
        case '-*'
        case '*'
            __codex_as_run
    end
end

complete -c codex-as -e
complete -c codex-as -f -a '(__codex_as_complete)'
