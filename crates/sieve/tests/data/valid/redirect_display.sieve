redirect "User <user@example.com>";
