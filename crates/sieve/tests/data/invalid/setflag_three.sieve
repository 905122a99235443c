require "imap4flags";
setflag "x" "y" "z";
