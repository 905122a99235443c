redirect "<user@example.com>";
