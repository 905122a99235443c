require "variables";
set "a" "b";
set "A" "c";
