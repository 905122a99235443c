require "mailbox";
keep;
