require "editheader";
addheader "X-A" "a
b";
