require "mailbox";
if mailboxexists ["a","b"] {keep;}
