namespace QubesWeb.Services.Consoles;

/// <summary>
/// The close codes a console socket (serial or graphical) ends with (WebSocket's private range, 4000-4999), so the
/// page can show the reason and offer what fits (Take over, Start) without parsing the sentence that comes with it.
/// </summary>
public static class ConsoleClose
{
    public const int Ended = 4000;
    public const int Busy = 4001;
    public const int NotRunning = 4002;
    public const int Unavailable = 4003;
    public const int TakenOver = 4004;

    /// <summary>The sentence the page shows for a busy console, next to its Take over button.</summary>
    public const string BusyReason = "Someone else has this console open.";
}
