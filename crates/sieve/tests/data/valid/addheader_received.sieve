require "editheader";
addheader "Received" "x";
