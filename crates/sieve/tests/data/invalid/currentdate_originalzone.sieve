require "date";
if currentdate :originalzone "year" "2020" {keep;}
