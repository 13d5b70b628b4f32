using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// The door: every request past the static files needs a live session, the pages (also their prerendered HTML) and
/// all of <c>/_blazor</c> alike. Without one, a page request gets the sign-in page and anything else a bare 401.
/// <c>?token=</c> on any page (the printed link) or the sign-in form trades the secret for a session cookie.
/// </summary>
public sealed class SignInMiddleware(RequestDelegate next, SignInSecret secret, SessionStore sessions, FailedSignIns failures,
    IOptions<QubesWebOptions> options, ILogger<SignInMiddleware> log)
{
    public const string SignInPath = "/signin";
    public const string SignOutPath = "/signout";
    public const string TokenParameter = "token";

    /// <summary>Per port: cookies are not port-scoped, and two consoles on one machine must not sign each other out.</summary>
    public static string CookieName(int port) => $"qubesweb-session-{port}";

    /// <summary>The session of a signed-in request, for what runs after the door (the circuit's activity).</summary>
    public static Session? SessionOf(HttpContext context) => context.Items[typeof(Session)] as Session;

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.Path.Equals(SignInPath, StringComparison.OrdinalIgnoreCase))
        {
            if (HttpMethods.IsPost(request.Method))
                await SignInFromFormAsync(context);
            else if (CookieSession(context) is not null)
                context.Response.Redirect(ReturnPath(request.Query["return"])); // already signed in
            else
                await ShowSignInAsync(context, ReturnPath(request.Query["return"]), null, StatusCodes.Status200OK);
            return;
        }
        if (request.Query.ContainsKey(TokenParameter) && (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)))
        {
            await SignInFromLinkAsync(context);
            return;
        }

        var session = CookieSession(context);
        if (request.Path.Equals(SignOutPath, StringComparison.OrdinalIgnoreCase))
        {
            await SignOutAsync(context, session);
            return;
        }
        if (session is null)
        {
            await RefuseAsync(context);
            return;
        }

        context.Items[typeof(Session)] = session;
        UserActivity.Set(context, () => sessions.KeepAlive(session));
        // A circuit's WebSocket (or long poll), or a qube's console socket, lives as long as this request: ending the
        // session cuts it.
        using (request.Path.StartsWithSegments("/_blazor") || context.WebSockets.IsWebSocketRequest ? session.Hold(context.Abort) : null)
            await next(context);
    }

    private Session? CookieSession(HttpContext context) => sessions.Find(context.Request.Cookies[CookieName(context.Connection.LocalPort)]);

    private async Task SignInFromLinkAsync(HttpContext context)
    {
        var request = context.Request;
        // The same address without the token, so it stays out of the address bar, the history and any bookmark.
        var query = QueryHelpers.ParseQuery(request.QueryString.Value).Where(p => p.Key != TokenParameter)
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)));
        var target = QueryHelpers.AddQueryString(ReturnPath(request.Path.Value), query);
        var refusal = TrySignIn(context, request.Query[TokenParameter].ToString(), target);
        if (refusal is not null) await ShowSignInAsync(context, target, refusal.Value.Message, refusal.Value.Status);
    }

    private async Task SignInFromFormAsync(HttpContext context)
    {
        var request = context.Request;
        if (!SameOriginOrNone(request))
        {
            await PlainAsync(context, StatusCodes.Status403Forbidden, "Cross-origin requests to the console are refused.");
            return;
        }
        if (!request.HasFormContentType)
        {
            await PlainAsync(context, StatusCodes.Status400BadRequest, "Send the token as a form field named 'token'.");
            return;
        }
        var form = await request.ReadFormAsync(context.RequestAborted);
        var target = ReturnPath(form["return"]);
        var refusal = TrySignIn(context, form[TokenParameter].ToString(), target);
        if (refusal is not null) await ShowSignInAsync(context, target, refusal.Value.Message, refusal.Value.Status);
    }

    /// <summary>Signs in and redirects to <paramref name="target"/>; otherwise says why not.</summary>
    private (int Status, string Message)? TrySignIn(HttpContext context, string token, string target)
    {
        var wait = failures.RetryAfter();
        if (wait > TimeSpan.Zero)
        {
            log.LogWarning("Sign-in attempt from {Remote} at {Time:O} refused unchecked: too many failed attempts in the last minute.",
                context.Connection.RemoteIpAddress, DateTimeOffset.UtcNow);
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString();
            return (StatusCodes.Status429TooManyRequests, $"Too many failed sign-in attempts. Try again in {(int)Math.Ceiling(wait.TotalSeconds)} s.");
        }
        if (!secret.Matches(token))
        {
            failures.Record();
            // The time, never the attempt's text: a mistyped token may be most of the real one.
            log.LogWarning("Failed sign-in attempt from {Remote} at {Time:O}.", context.Connection.RemoteIpAddress, DateTimeOffset.UtcNow);
            return (StatusCodes.Status401Unauthorized, "That token is not this console's. Copy it again from the sign-in link the console printed.");
        }

        var session = sessions.Create();
        context.Response.Cookies.Append(CookieName(context.Connection.LocalPort), session.Id, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Path = "/",
            IsEssential = true,
        });
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Redirect(target);
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
        return null;
    }

    private async Task SignOutAsync(HttpContext context, Session? session)
    {
        if (!HttpMethods.IsPost(context.Request.Method) || !SameOriginOrNone(context.Request, requireOrigin: true))
        {
            await PlainAsync(context, StatusCodes.Status403Forbidden, "Sign out with the console's own Sign out button.");
            return;
        }
        if (session is not null) sessions.End(session.Id);
        context.Response.Cookies.Delete(CookieName(context.Connection.LocalPort), new CookieOptions { Path = "/" });
        context.Response.Redirect(SignInPath + "?signedout=1");
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
    }

    private Task RefuseAsync(HttpContext context)
    {
        var request = context.Request;
        var isPage = (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && !context.WebSockets.IsWebSocketRequest
            && !request.Path.StartsWithSegments("/_blazor") && !Path.HasExtension(request.Path.Value);
        return isPage
            ? ShowSignInAsync(context, ReturnPath(request.Path.Value + request.QueryString.Value), null, StatusCodes.Status401Unauthorized)
            : PlainAsync(context, StatusCodes.Status401Unauthorized, "Sign in first: open the sign-in link the console printed at start.");
    }

    private Task ShowSignInAsync(HttpContext context, string returnPath, string? message, int status)
    {
        if (message is null && context.Request.Query.ContainsKey("signedout")) message = "You are signed out.";
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsync(SignInPage.Html(returnPath, message, options.Value.SignInLinkFile), Encoding.UTF8);
    }

    private static Task PlainAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text);
    }

    /// <summary>Only a path on this console: never another host (<c>//x</c>, <c>/\x</c>), never the door itself.</summary>
    public static string ReturnPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path[0] != '/' || path.StartsWith("//", StringComparison.Ordinal)
            || path.StartsWith("/\\", StringComparison.Ordinal) || path.Any(char.IsControl)
            || path.StartsWith(SignInPath, StringComparison.OrdinalIgnoreCase) || path.StartsWith(SignOutPath, StringComparison.OrdinalIgnoreCase))
            return "/";
        return path;
    }

    /// <summary>
    /// Whether a form POST came from the console's own pages. Browsers say so in Sec-Fetch-Site; without it (an older
    /// browser, or not a browser) the Origin must be the console's. Origin alone will not do: under the console's
    /// Referrer-Policy no-referrer, Chromium sends "Origin: null" with its own same-origin form posts.
    /// </summary>
    private static bool SameOriginOrNone(HttpRequest request, bool requireOrigin = false)
    {
        var site = request.Headers["Sec-Fetch-Site"];
        if (site.Count > 0) return site.Count == 1 && site[0] == "same-origin";
        return request.Headers.Origin.Count == 0 ? !requireOrigin : SecurityMiddleware.OriginMatches(request);
    }
}
