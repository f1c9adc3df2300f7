<# Code `codex-as use` prints for the init's function to evaluate (bash and zsh). Variable names
   are codex-as's own constants; every value is quoted for the shell. Identity variables the
   shell had are kept in unexported `__codex_as_saved_*` variables, so `use --unset` can put
   them back without any child process ever seeing them. #>
{%- for v in save %}
__codex_as_saved_{{ v }}=${{ v }}
unset {{ v }}
{%- endfor %}
{%- for v in unset %}
unset {{ v }}
{%- endfor %}
{%- for v in restore %}
if [ -n "${__codex_as_saved_{{ v }}+x}" ]; then export {{ v }}="$__codex_as_saved_{{ v }}"; unset __codex_as_saved_{{ v }}; fi
{%- endfor %}
{%- for s in set %}
export {{ s.0 }}={{ s.1 }}
{%- endfor %}
