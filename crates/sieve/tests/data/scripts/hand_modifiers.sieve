require ["variables","fileinto"];
set "a" "Hello World";
set :lower "b" "${a}";
set :upper "c" "${a}";
set :length "n" "${a}";
set :quotewildcard "q" "a*b?c";
if string :is "${b}${n}" "hello world11"
{
	fileinto "Ok-${c}";
}
if string :is "${q}" "a\\*b\\?c"
{
	fileinto "Quoted";
}
