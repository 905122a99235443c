require "index";
if header :index 0 "x" "y" {keep;}
