require "date";
if date "date" "year" "2020" {keep;}
