redirect "User <user@exa#ple.com>";
