# Drives real zsh completion: starts an interactive zsh on a pseudo-terminal (zpty), loads the
# init, types `$1` followed by TAB, and prints every candidate offered, one a line.
# $2: `before` or `after`: whether compinit runs before or after the init is evaluated; or
# `fpath:DIR`: no init, the `_codex-as` file in DIR is autoloaded by compinit.
# Candidates are written to $ZC_OUT by a wrapper around compadd, not read off the terminal.
zmodload zsh/zpty || exit 3
typeset -g line=$1 order=$2

zpty z zsh -f -i || exit 3
local setup='
PS1="" PROMPT="" RPROMPT=""
unsetopt zle_bracketed_paste 2>/dev/null
compadd() {
    local -a __zc_hits
    if (( ${@[(I)-(O|A|D)]} )); then builtin compadd "$@"; return; fi
    builtin compadd -A __zc_hits "$@"
    (( $#__zc_hits )) && print -rl -- $__zc_hits >> $ZC_OUT
    builtin compadd "$@"
}
__zc_done() { print -r -- "--end--" >> $ZC_OUT; exit 0 }
bindkey "^I" complete-word
'
if [[ $order == fpath:* ]]; then
    setup+="fpath=(${(q)order#fpath:} \$fpath)"$'\nautoload -Uz compinit && compinit -u -D\n'
elif [[ $order == before ]]; then
    setup+=$'autoload -Uz compinit && compinit -u -D\neval "$(codex-as init zsh --shortcuts)"\n'
else
    setup+=$'eval "$(codex-as init zsh --shortcuts)"\nautoload -Uz compinit && compinit -u -D\n'
fi
# compinit empties comppostfuncs, so this comes last.
setup+=$'comppostfuncs=(__zc_done)\n'
# One line per command, so every line runs (and precmd runs once) before the TAB is typed.
print -r -- $setup > $ZC_OUT.setup
zpty -w z "source ${(q)ZC_OUT}.setup"
zpty -n -w z "$line"$'\t'
# Drain the terminal until the shell exits after completing (or the caller's timeout kills us).
local out
while zpty -r z out; do :; done
zpty -d z
