<# Code `codex-as env --shell fish` prints for `| source`. Every line leaves $status at 0 when
   it worked: `set` passes on the status before it, and a bare `set -e` of a missing variable
   leaves 4, so `codex-as env work | source; and codex` would never run codex. -#>
# {{ how }}
{%- for v in unset %}
if set -q {{ v }}; set -e {{ v }}; end
{%- endfor %}
{%- for s in set %}
set -gx {{ s.0 }} {{ s.1 }}
{%- endfor %}
