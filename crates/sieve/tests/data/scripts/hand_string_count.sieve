require ["variables","relational","comparator-i;ascii-numeric","fileinto"];
set "empty" "";
set "full" "x";
if string :count "eq" :comparator "i;ascii-numeric" ["${empty}", "${full}", "y"] "2"
{
	fileinto "CountTwo";
}
