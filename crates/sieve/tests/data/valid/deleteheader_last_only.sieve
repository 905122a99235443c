require "editheader";
deleteheader :last "X-A";
