require ["reject"];
# rule:[Reject spam]
if header :matches "x-spam-score" ["7*","8*","9*"]
{
	reject "Your message looks like spam.";
}
