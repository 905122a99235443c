require "relational";
if header :value "gg" "x" "1" { keep; }
