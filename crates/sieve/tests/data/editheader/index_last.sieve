require ["editheader", "index"];
deleteheader :index 1 :last "received";
deleteheader :index 2 "received";
deleteheader :matches "subject" "*SPAM*";
