using System.Net;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// The page a request without a session gets: plain HTML made here, with no estate data, no Blazor and no script.
/// Every value in it is HTML-encoded.
/// </summary>
public static class SignInPage
{
    public static string Html(string returnPath, string? message, string linkFile) => $$"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1.0" />
        <title>Sign in · QubesWeb</title>
        <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
        <link rel="stylesheet" href="/signin.css" />
        </head>
        <body>
        <main class="qw-signin">
        <h1>QubesWeb</h1>
        <p>This console drives every qube of the machine, so it asks who you are. Open the sign-in link it printed
        when it started, or paste the link's token here.</p>
        {{(message is null ? "" : $"<p class=\"qw-signin-error\" role=\"alert\" id=\"signin-error\">{WebUtility.HtmlEncode(message)}</p>")}}
        <form method="post" action="/signin">
        <input type="hidden" name="return" value="{{WebUtility.HtmlEncode(returnPath)}}" />
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="off" autofocus required maxlength="256" spellcheck="false" />
        <button type="submit">Sign in</button>
        </form>
        <p class="qw-signin-hint">The link is also in <code>{{WebUtility.HtmlEncode(linkFile)}}</code>, readable only by the
        console's user. Start the console with <code>--rotate-secret</code> to make a new one.</p>
        </main>
        </body>
        </html>
        """;
}
