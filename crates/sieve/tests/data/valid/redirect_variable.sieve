require "variables";
set "x" "a@example.com";
redirect "${x}";
