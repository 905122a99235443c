require ["imap4flags"];
if header :contains "subject" ["invoice", "release"]
{
	addflag "$Important";
}
