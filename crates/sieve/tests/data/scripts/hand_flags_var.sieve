require ["imap4flags","variables","fileinto"];
set "myflags" "";
addflag "myflags" "\\Answered";
addflag "myflags" ["$Label1", "\\Answered"];
if hasflag :contains "myflags" "label1"
{
	fileinto :flags "${myflags}" "Counted";
}
keep :flags "\\Draft";
