namespace QubesWeb.Hosting;

/// <summary>
/// How a connection that makes no more requests (a console's socket) tells the sign-in door that its user is still at
/// work: the door puts the signed-in session's keep-alive on the request, and the socket calls it on each key.
/// </summary>
public static class UserActivity
{
    private static readonly object Key = new();

    public static void Set(HttpContext context, Action keepAlive) => context.Items[Key] = keepAlive;

    /// <summary>The request's session keep-alive; null when the request passed no sign-in (none is needed for it).</summary>
    public static Action? Of(HttpContext context) => context.Items[Key] as Action;
}
