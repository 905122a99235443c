require ["copy","fileinto"];
fileinto :copy "Copies";
if header :contains "subject" "SPAM"
{
	discard;
}
