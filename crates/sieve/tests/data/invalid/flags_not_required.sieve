keep :flags "\\Seen";
