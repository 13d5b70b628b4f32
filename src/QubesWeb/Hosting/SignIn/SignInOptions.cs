namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// Who may drive the console: "SignIn:SessionIdleTimeout" and the rest in any configuration source;
/// <c>--rotate-secret</c> and <c>--open</c> are the command-line shorthands.
/// </summary>
public sealed class SignInOptions
{
    /// <summary>A session unused this long ends (12 h, as a working day: a tab left overnight asks again).</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(12);

    /// <summary>Make a new secret at start: the old sign-in link stops working.</summary>
    public bool RotateSecret { get; set; }

    /// <summary>Open dom0's browser on the sign-in link at start, where a desktop session exists.</summary>
    public bool Open { get; set; }

    /// <summary>
    /// Failed sign-ins allowed per minute, all clients together (they all come from loopback); beyond that every
    /// attempt is refused until the minute has passed.
    /// </summary>
    public int FailedAttemptsPerMinute { get; set; } = 10;
}
