require ["fileinto"];
# rule:[Medium]
if allof (size :over 500, size :under 2K)
{
	fileinto "Medium";
}
