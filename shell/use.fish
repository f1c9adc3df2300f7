<# Code `codex-as use` prints for the init's function to evaluate (fish). Every line leaves
   $status at 0 when it worked (a bare `set -e` of a missing variable would leave 4), so
   `codex-as use work; and codex` works. Saved identity variables are global, not exported. #>
{%- for v in save %}
set -g __codex_as_saved_{{ v }} ${{ v }}
set -e {{ v }}
{%- endfor %}
{%- for v in unset %}
if set -q {{ v }}; set -e {{ v }}; end
{%- endfor %}
{%- for v in restore %}
if set -q __codex_as_saved_{{ v }}; set -gx {{ v }} $__codex_as_saved_{{ v }}; set -e __codex_as_saved_{{ v }}; end
{%- endfor %}
{%- for s in set %}
set -gx {{ s.0 }} {{ s.1 }}
{%- endfor %}
