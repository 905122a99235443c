require ["fileinto", "mailbox"];
fileinto :create "INBOX.Lists.Sieve";
