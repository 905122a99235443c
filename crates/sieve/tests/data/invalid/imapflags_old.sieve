require "imapflags";
keep;
