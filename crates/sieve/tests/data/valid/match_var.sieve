require "variables";
set "x" "${1}";
