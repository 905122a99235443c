redirect "user@localhost";
