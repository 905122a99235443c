require ["fileinto"];
# rule:[Large]
if size :over 10K
{
	fileinto "Large";
}
elsif size :under 400
{
	fileinto "Tiny";
}
