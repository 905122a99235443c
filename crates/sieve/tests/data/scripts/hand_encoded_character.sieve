require ["encoded-character","fileinto"];
if header :contains "subject" "${hex:5B 64 65 76 5D}"
{
	fileinto "${unicode:44}ev";
}
