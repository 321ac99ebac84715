using Microsoft.Data.Sqlite;

namespace Rlhf.Labeling;

/// <summary>
/// The labeling project's SQLite file: WAL journal, synchronous=FULL (a committed ranking survives a crash or a
/// power cut once the call returns), foreign keys on, and a schema versioned through <c>PRAGMA user_version</c>
/// whose migrations run in order when the database is opened.
/// </summary>
public sealed class LabelingDatabase
{
    // Append only: a migration that shipped is never edited, the next change is a new entry.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE project(
            id INTEGER PRIMARY KEY CHECK (id = 1),
            instructions TEXT NOT NULL,
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            organiser_token_hash BLOB NOT NULL,
            csrf_key BLOB NOT NULL,
            created_utc TEXT NOT NULL);
        CREATE TABLE items(
            id INTEGER PRIMARY KEY,
            prompt_id TEXT NOT NULL UNIQUE,
            prompt TEXT NOT NULL,
            closed INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE completions(
            item_id INTEGER NOT NULL REFERENCES items(id),
            position INTEGER NOT NULL,
            completion_id TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (item_id, position),
            UNIQUE (item_id, completion_id));
        CREATE TABLE labelers(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            token_hash BLOB NOT NULL UNIQUE,
            created_utc TEXT NOT NULL);
        CREATE TABLE assignments(
            labeler_id INTEGER NOT NULL REFERENCES labelers(id),
            item_id INTEGER NOT NULL REFERENCES items(id),
            PRIMARY KEY (labeler_id, item_id));
        CREATE INDEX assignments_by_item ON assignments(item_id);
        CREATE TABLE rankings(
            labeler_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            ranks TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1,
            updated_utc TEXT NOT NULL,
            PRIMARY KEY (labeler_id, item_id),
            FOREIGN KEY (labeler_id, item_id) REFERENCES assignments(labeler_id, item_id));
        CREATE INDEX rankings_by_item ON rankings(item_id);
        CREATE TABLE thumbs(
            labeler_id INTEGER NOT NULL,
            item_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            up INTEGER NOT NULL CHECK (up IN (0, 1)),
            updated_utc TEXT NOT NULL,
            PRIMARY KEY (labeler_id, item_id, position),
            FOREIGN KEY (labeler_id, item_id) REFERENCES assignments(labeler_id, item_id));
        """,
    ];

    private readonly string connectionString;

    private LabelingDatabase(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string Path { get; }

    /// <summary>The schema version this build writes (the number of migrations).</summary>
    public static int SchemaVersion => Migrations.Length;

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/> and runs pending migrations.</summary>
    public static LabelingDatabase Open(string path)
    {
        var db = new LabelingDatabase(path);
        try
        {
            db.Migrate();
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 26)
        {
            throw new Rlhf.IO.InvalidInputException($"{db.Path}: not a SQLite database ({e.Message})");
        }

        return db;
    }

    public SqliteConnection Connect()
    {
        var connection = new SqliteConnection(connectionString);
        connection.Open();
        // synchronous and foreign_keys are per connection; journal_mode=WAL is stored in the file.
        Execute(connection, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        return connection;
    }

    private void Migrate()
    {
        using var connection = Connect();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        using var tx = connection.BeginTransaction();
        int version = Convert.ToInt32(Scalar(connection, tx, "PRAGMA user_version;"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > Migrations.Length)
        {
            throw new InvalidOperationException($"{Path}: schema version {version} is newer than this build understands ({Migrations.Length}); upgrade rlhf");
        }

        for (int v = version; v < Migrations.Length; v++)
        {
            using var command = connection.CreateCommand();
            command.Transaction = tx;
            command.CommandText = Migrations[v] + $"\nPRAGMA user_version = {v + 1};";
            command.ExecuteNonQuery();
        }

        tx.Commit();
    }

    internal static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction tx, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
