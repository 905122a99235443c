require ["variables", "fileinto", "encoded-character"];
set "a" "${hex:4A 75 6E 6B}";
set "b" "${a}${a}";
set :upperfirst :lower "c" "HELLO";
set "empty" "";
if string :is "${b}" "JunkJunk"
{
	fileinto "${c}";
}
if string :is "${undefined}" ""
{
	fileinto "Undefined";
}
if string :matches ["${empty}", "x"] "?"
{
	fileinto "Q-${0}";
}
