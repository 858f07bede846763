#!/usr/bin/perl
# Lists the query string's fields, one "name=value" a line, decoded.
use strict;
use warnings;

sub decode {
    my ($text) = @_;
    $text =~ tr/+/ /;
    $text =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    return $text;
}

print "Status: 200 OK\r\n";
print "Content-Type: text/plain; charset=utf-8\r\n\r\n";
print "method=$ENV{REQUEST_METHOD}\n";
print "path_info=", ($ENV{PATH_INFO} // ""), "\n";
for my $pair (split /[&;]/, $ENV{QUERY_STRING} // "") {
    my ($name, $value) = split /=/, $pair, 2;
    print decode($name), "=", decode($value // ""), "\n";
}
