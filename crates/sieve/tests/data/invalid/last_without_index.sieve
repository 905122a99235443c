require "index";
if header :last :is "x" "y" { keep; }
