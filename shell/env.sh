<# Code `codex-as env` prints for `eval` (bash, zsh, any POSIX sh). Variable names are
   codex-as's own constants; every value is quoted for the shell. The first line says which
   shell the code is for and how that was chosen: a comment, harmless to eval. -#>
# {{ how }}
{%- for v in unset %}
unset {{ v }};
{%- endfor %}
{%- for s in set %}
export {{ s.0 }}={{ s.1 }};
{%- endfor %}
